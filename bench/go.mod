module github.com/fsmkernel/fsmkernel/bench

go 1.26.0

replace github.com/fsmkernel/fsmkernel => ../

require (
	github.com/fsmkernel/fsmkernel v0.0.0-00010101000000-000000000000
	github.com/looplab/fsm v1.0.3
	github.com/mdlayher/vsock v1.4.0
	github.com/panjf2000/gnet/v2 v2.9.7
	golang.org/x/sys v0.49.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/dave/jennifer v1.7.1 // indirect
	github.com/goccy/go-yaml v1.19.2 // indirect
	github.com/mdlayher/socket v0.8.0 // indirect
	github.com/panjf2000/ants/v2 v2.11.3 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	go.uber.org/zap v1.27.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/natefinch/lumberjack.v2 v2.2.1 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)

tool github.com/fsmkernel/fsmkernel/cmd/fsmgen
