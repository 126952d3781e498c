package memstore_test

import (
	"testing"

	"votes/projections/memstore"
	"votes/projections/storetest"
)

func TestTitlesPassTheContract(t *testing.T) {
	storetest.TestTitleIndex(t, func(*testing.T) storetest.TitleStore { return memstore.NewTitles() })
}
