package admin

import "time"

// SetClock makes a read the time from now: a machine whose clock is off.
func (a *Admin) SetClock(now func() time.Time) { a.now = now }

// SetLease shortens how long a rebuild holds its version between
// heartbeats, so that a test sees a heartbeat fail.
func (a *Admin) SetLease(d time.Duration) { a.lease = d }
