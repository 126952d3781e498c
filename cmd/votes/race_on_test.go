//go:build race

package main

// raceSlowdown is how much slower the race detector makes this process
// (Go's documentation: 2 to 20 times the CPU time; several stacks share 2
// cores in CI): time bounds that a user meets without it are stretched by
// it here.
const raceSlowdown = 2
