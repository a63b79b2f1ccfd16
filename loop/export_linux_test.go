package loop

// The helpers of the internal tests that package loop_test shares, under
// exported names; compiled only for tests.

var (
	CheckFDs             = checkFDs
	ContractFDs          = contractFDs
	ShutdownGroup        = shutdown
	ServeEcho            = serveEcho
	EchoClients          = echoClients
	EchoOverMany         = echoOverMany
	EchoOnce             = echoOnce
	NewRecorder          = newRecorder
	WaitFor              = wait
	WaitData             = waitData
	MustListen           = mustListen
	WantContainedEBADF   = wantContainedEBADF
	Loopback             = loopback
	ServeActive          = serveActive
	Connect              = connect
	PeerClosed           = peerClosed
	PingPong             = pingPong
	RequireVsockLoopback = requireVsockLoopback
	VsockLocal           = vsockLocal
	VsockPort            = vsockPort
	DialVsock            = dialVsock
)

const ContractWait = contractWait

// Recorder is the handler that records its callbacks and the bytes it read.
type Recorder = recorder

// NewActiveEcho returns a handler that echoes and sends each of its channels
// on active when it becomes active.
func NewActiveEcho(active chan *Channel) Handler { return activeEcho{active: active} }
