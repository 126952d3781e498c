package memstore_test

import (
	"testing"

	"votes/projections"
	"votes/projections/memstore"
	"votes/projections/storetest"
)

func TestBallotsContract(t *testing.T) {
	storetest.TestBallots(t, func(*testing.T) projections.Ballots { return memstore.NewBallots() })
}

func TestCellsContract(t *testing.T) {
	storetest.TestCells(t, func(*testing.T) storetest.TallyCells { return memstore.NewCells() })
}
