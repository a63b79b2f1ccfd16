package loop

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/mdlayher/vsock"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// This file gives the Group's listens and dials the string forms of net.Listen
// and net.Dial: a network name and an address, resolved as package net
// resolves them, with failures reported as *net.OpError the way net reports
// them.

// errMissingAddress is net's error for a dial to an empty address.
var errMissingAddress = errors.New("missing address")

// ServeAddress listens on address in network and serves each connection on a
// loop of the group with the handler accepted returns, like Serve. Every
// error is a *net.OpError whose Op is "listen", as net.Listen's are: an
// unknown network's Err is a net.UnknownNetworkError, a malformed address's
// a *net.AddrError.
//
// The networks and their addresses, the same for DialAddress, Listen and
// DialContext:
//
//   - "tcp", "tcp4", "tcp6": "host:port", as for net.Listen and net.Dial. The
//     host is an IP literal or a name, looked up as net looks it up; of its
//     addresses one is used, the first IPv4 one unless the host is written in
//     brackets (net.ResolveTCPAddr's choice), and a dial tries only that one.
//     The port is a number or a service name. An empty host listens on every
//     address ("tcp" on IPv6 and IPv4, "tcp4" on IPv4) and dials the loopback
//     address (127.0.0.1, or ::1 for "tcp6"); an empty address listens on a
//     free port of every address, as net.Listen does.
//   - "unix": a socket path; on Linux a name that starts with '@' is
//     abstract.
//   - "vsock": "cid:port", a context ID and a port in decimal; the context ID
//     may also be written as vsock.Addr's String writes it ("local(1)",
//     "host(2)", "vm(3)"), so that a Listener's Addr().String() resolves back
//     to its address. An empty context ID listens on every context ID of the
//     machine and dials the local one (1); port 0 listens on a free port.
//
// "tcp6" with an empty or unspecified host listens on IPv4 too, unlike
// net.Listen: sockets.Listen makes every wildcard IPv6 listener dual-stack.
func (g *Group) ServeAddress(network, address string, accepted Accepted, o *ListenerOptions) (*Listener, error) {
	addr, err := resolveAddr(context.Background(), "listen", network, address)
	if err != nil {
		return nil, err
	}
	return g.serve(network, addr, accepted, o)
}

// DialAddress connects to address in network (see ServeAddress for the
// forms) on a loop of the group, like Dial; ctx bounds the name lookup and the
// connect. Every error is a *net.OpError whose Op is "dial", as net.Dial's
// are.
func (g *Group) DialAddress(ctx context.Context, network, address string, h Handler, o *ChannelOptions) (*Channel, error) {
	addr, err := resolveAddr(ctx, "dial", network, address)
	if err != nil {
		return nil, err
	}
	return g.dial(ctx, network, addr, h, o)
}

// Listen is net.Listen for the group: it listens on address in network (see
// ServeAddress for the forms) and returns a *ConnListener, as ListenConn
// does, whose Accept hands out each connection as a *Conn served by a loop of
// the group. Every error is a *net.OpError whose Op is "listen".
func (g *Group) Listen(network, address string) (net.Listener, error) {
	addr, err := resolveAddr(context.Background(), "listen", network, address)
	if err != nil {
		return nil, err
	}
	ln, err := g.ListenConn(addr)
	if err != nil {
		return nil, renameNet(err, network)
	}
	return ln, nil
}

// DialContext is net.Dialer's DialContext for the group: it connects to
// address in network (see ServeAddress for the forms) and returns the
// connection as a *Conn, as DialConn does; it fits http.Transport's
// DialContext. ctx bounds the name lookup and the connect. Every error is a
// *net.OpError whose Op is "dial".
func (g *Group) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	addr, err := resolveAddr(ctx, "dial", network, address)
	if err != nil {
		return nil, err
	}
	c, err := g.DialConn(ctx, addr)
	if err != nil {
		return nil, renameNet(err, network)
	}
	return c, nil
}

// renameNet makes the network of a *net.OpError the one the caller named
// ("tcp4" rather than the address's "tcp"); other errors pass unchanged.
func renameNet(err error, network string) error {
	if op, ok := err.(*net.OpError); ok && op.Net != network {
		c := *op
		c.Net = network
		return &c
	}
	return err
}

// resolveAddr turns network and address into the address Serve or Dial takes,
// for op ("listen" or "dial"), or returns net's *net.OpError for them.
func resolveAddr(ctx context.Context, op, network, address string) (net.Addr, error) {
	fail := func(err error) error { return &net.OpError{Op: op, Net: network, Err: err} }
	switch network {
	case "tcp", "tcp4", "tcp6", "unix", "vsock":
	default:
		return nil, fail(net.UnknownNetworkError(network))
	}
	if op == "dial" && address == "" {
		return nil, fail(errMissingAddress)
	}
	switch network {
	case "unix":
		return &net.UnixAddr{Name: address, Net: "unix"}, nil
	case "vsock":
		a, err := resolveVsock(op, address)
		if err != nil {
			return nil, fail(err)
		}
		return a, nil
	}
	a, err := resolveTCP(ctx, network, address)
	if err != nil {
		return nil, fail(err)
	}
	switch {
	case a.IP != nil:
	case op == "dial":
		a.IP = loopbackFor(network)
	case network == "tcp4":
		a.IP = net.IPv4zero
	}
	return a, nil
}

// resolveTCP resolves a TCP address as net.ResolveTCPAddr does, but under ctx:
// the same errors (*net.AddrError, *net.DNSError), the same choice among a
// name's addresses.
func resolveTCP(ctx context.Context, network, address string) (*net.TCPAddr, error) {
	if address == "" {
		return &net.TCPAddr{}, nil
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	portnum, err := net.DefaultResolver.LookupPort(ctx, network, port)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return &net.TCPAddr{Port: portnum}, nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	var fit []net.IPAddr
	for _, ip := range ips {
		v4 := ip.IP.To4() != nil
		switch {
		case network == "tcp4" && !v4, network == "tcp6" && (v4 || len(ip.IP) != net.IPv6len):
			continue
		}
		fit = append(fit, ip)
	}
	if len(fit) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	pick := fit[0]
	want6 := network == "tcp" && strings.Contains(address, "[")
	for _, ip := range fit {
		if (ip.IP.To4() != nil) != want6 {
			pick = ip
			break
		}
	}
	return &net.TCPAddr{IP: pick.IP, Port: portnum, Zone: pick.Zone}, nil
}

// loopbackFor is the address a dial to an empty host goes to.
func loopbackFor(network string) net.IP {
	if network == "tcp6" {
		return net.IPv6loopback
	}
	return net.IPv4(127, 0, 0, 1)
}

// vsockNames are the names vsock.Addr's String gives the context IDs; any
// other ID is a "vm".
var vsockNames = map[string]uint32{"hypervisor": vsock.Hypervisor, "local": vsock.Local, "host": vsock.Host}

// resolveVsock parses "cid:port" (see ServeAddress) into a *vsock.Addr.
func resolveVsock(op, address string) (*vsock.Addr, error) {
	i := strings.LastIndexByte(address, ':')
	if i < 0 {
		return nil, &net.AddrError{Err: "missing port in address", Addr: address}
	}
	host, port := address[:i], address[i+1:]
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return nil, &net.AddrError{Err: "invalid port", Addr: port}
	}
	a := &vsock.Addr{Port: uint32(p)}
	switch {
	case host == "" && op == "listen":
		a.ContextID = sockets.VsockAnyCID
	case host == "":
		a.ContextID = vsock.Local
	default:
		cid, ok := parseContextID(host)
		if !ok {
			return nil, &net.AddrError{Err: "invalid context ID", Addr: host}
		}
		a.ContextID = cid
	}
	return a, nil
}

// parseContextID reads a decimal context ID, or one in vsock.Addr's String
// form, "name(N)", whose name must be the one String gives N.
func parseContextID(s string) (uint32, bool) {
	name, num := "", s
	if open := strings.IndexByte(s, '('); open >= 0 && strings.HasSuffix(s, ")") {
		name, num = s[:open], s[open+1:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, false
	}
	cid := uint32(n)
	if name != "" {
		want, named := vsockNames[name]
		if named && want != cid || !named && (name != "vm" || isNamedCID(cid)) {
			return 0, false
		}
	}
	return cid, true
}

// isNamedCID says whether vsock.Addr's String names cid other than "vm".
func isNamedCID(cid uint32) bool {
	for _, v := range vsockNames {
		if v == cid {
			return true
		}
	}
	return false
}
