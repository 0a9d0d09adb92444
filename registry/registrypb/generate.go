// Package registrypb holds the protobuf messages of the cluster registry.
package registrypb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative registry.proto
