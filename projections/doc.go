// Package projections folds vote events into ballots and tallies.
//
// A ballot is one voter's current vote per aspect on one title: the latest
// vote wins, by the receiver's clock. A tally counts, per title, aspect and
// choice, the ballots whose current vote is that choice. Fold is the pure
// definition; Projector maintains the same result incrementally in stores,
// exactly once, whatever order or how many times events are delivered.
package projections
