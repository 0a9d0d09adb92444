// Package registrypb holds the protobuf messages of the cluster registry.
package registrypb

//go:generate sh -c "protoc -I . -I $(go list -m -f '{{.Dir}}' github.com/asynkron/protoactor-go)/actor --go_out=. --go_opt=paths=source_relative --go_opt=Mactor.proto=github.com/asynkron/protoactor-go/actor registry.proto"
