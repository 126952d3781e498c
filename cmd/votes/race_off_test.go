//go:build !race

package main

// raceSlowdown: without the race detector, time bounds are the user's.
const raceSlowdown = 1
