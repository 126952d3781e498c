package admin

import "time"

// SetClock makes a read the time from now: a machine whose clock is off.
func (a *Admin) SetClock(now func() time.Time) { a.now = now }
