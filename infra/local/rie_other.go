//go:build !linux

package local

import (
	"os"
	"syscall"
)

// The rie runtime needs Linux (Config.checkRuntime says so); these let the
// package build elsewhere.

func sandboxProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
