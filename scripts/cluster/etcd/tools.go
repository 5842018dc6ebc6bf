//go:build tools

// Package tools names the commands scripts/install-test-cluster builds.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
