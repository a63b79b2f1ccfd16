module github.com/fsmkernel/fsmkernel/bench

go 1.26.8

replace github.com/fsmkernel/fsmkernel => ../

require (
	github.com/fsmkernel/fsmkernel v0.0.0-00010101000000-000000000000
	github.com/looplab/fsm v1.0.3
)

require (
	github.com/dave/jennifer v1.7.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)

tool github.com/fsmkernel/fsmkernel/cmd/fsmgen
