package local

import "syscall"

// sandboxProcAttr puts a sandbox's emulator in a process group of its own,
// with the bootstrap it starts, so that one signal ends both; and ends the
// emulator if this process dies first.
func sandboxProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group pid leads.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
