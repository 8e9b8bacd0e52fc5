package main

import (
	"github.com/cairnkv/cairn/api"
	"github.com/cairnkv/cairn/server"
)

// The server streams Maintenance.Snapshot straight from a read transaction
// rather than through a spooled copy.
var _ api.SnapshotOpener = (*server.Server)(nil)
