//go:build tools

// Package tools names the command scripts/install-test-cluster builds.
package tools

import _ "github.com/opencontainers/runc"
