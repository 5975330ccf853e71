// gospiffe is a SPIFFE workload written with go-spiffe v2, the Go library every Go workload uses: it
// talks to a Workload API server (a SPIRE agent, or svidkit-agent) the way real Go services do, so
// the interop tests can point the same program at either server and compare.
//
// Usage:
//
//	gospiffe x509     [-socket unix:///path] [-timeout 30s]
//	gospiffe bundles  [-socket ...]
//	gospiffe jwt      -audience A [-audience B ...] [-spiffe-id ID] [-socket ...]
//	gospiffe validate -audience A -token T [-socket ...]
//	gospiffe watch    -updates N [-socket ...]
//	gospiffe serve    -addr 127.0.0.1:0 -authorize ID [-spiffe-id OWN] [-requests N] [-socket ...]
//	gospiffe dial     -addr HOST:PORT -authorize ID [-spiffe-id OWN] [-message M] [-socket ...]
//
// Without -socket the address comes from SPIFFE_ENDPOINT_SOCKET, as go-spiffe reads it.
//
// Every line on stdout is one JSON object. A failure prints {"error": ..., "code": ...} (code is the
// gRPC status name when the server answered with one, so a test can tell PERMISSION_DENIED from
// UNAVAILABLE) and exits 1; a usage error exits 2.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Bounds on what the peer on the other end of a TLS connection may send: one line, briefly.
const (
	maxLine   = 4096
	ioTimeout = 10 * time.Second
	// maxUpdates keeps a watch from being asked to run forever.
	maxUpdates = 1000
)

var out = json.NewEncoder(os.Stdout)

func emit(v map[string]any) {
	if err := out.Encode(v); err != nil {
		os.Exit(3)
	}
}

// fail prints the error as JSON with its gRPC code (when the server answered with one) and exits 1.
func fail(what string, err error) {
	v := map[string]any{"error": fmt.Sprintf("%s: %v", what, err)}
	if code := grpcCode(err); code != "" {
		v["code"] = code
	}
	emit(v)
	os.Exit(1)
}

// grpcCode is the wire name of the gRPC status in err's chain (go-spiffe wraps the RPC's error in
// its own), or "" when there is none.
func grpcCode(err error) string {
	switch c := status.Code(err); c {
	case codes.OK, codes.Unknown:
		return ""
	default:
		return strings.ToUpper(codeName(c.String()))
	}
}

// codeName turns grpc-go's CamelCase code names (PermissionDenied) into the wire spelling
// (PERMISSION_DENIED) that the other peers print.
func codeName(camel string) string {
	var b strings.Builder
	for i, r := range camel {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "gospiffe: %s\n", msg)
	os.Exit(2)
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// command is one subcommand's flag set with the flags every subcommand takes, and the steps every
// subcommand starts with: parsing, the deadline, the Workload API client or X.509 source.
type command struct {
	*flag.FlagSet
	socket  string
	timeout time.Duration
}

func newCommand(name string) *command {
	c := &command{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.SetOutput(os.Stderr)
	c.StringVar(&c.socket, "socket", "", "Workload API address (default: SPIFFE_ENDPOINT_SOCKET)")
	c.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long")
	return c
}

// parse reads the arguments; a usage error exits 2.
func (c *command) parse(args []string) {
	if err := c.Parse(args); err != nil {
		os.Exit(2)
	}
	if c.NArg() != 0 {
		usage("unexpected arguments: " + strings.Join(c.Args(), " "))
	}
	if c.timeout <= 0 || c.timeout > 10*time.Minute {
		usage("-timeout must be between 0 and 10m")
	}
}

// context is bounded by -timeout, so that no subcommand can run forever.
func (c *command) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

func (c *command) clientOptions() []workloadapi.ClientOption {
	if c.socket == "" {
		return nil
	}
	return []workloadapi.ClientOption{workloadapi.WithAddr(c.socket)}
}

// connect gives the deadline and a Workload API client, or fails; done closes both.
func (c *command) connect() (ctx context.Context, client *workloadapi.Client, done func()) {
	ctx, cancel := c.context()
	client, err := workloadapi.New(ctx, c.clientOptions()...)
	check("workload API client", err)
	return ctx, client, func() {
		client.Close()
		cancel()
	}
}

// openSource gives the deadline and an X509Source that serves the SVID of own (the default SVID when
// own is zero), or fails; done closes both.
func (c *command) openSource(own spiffeid.ID) (ctx context.Context, source *workloadapi.X509Source, done func()) {
	ctx, cancel := c.context()
	source = c.x509Source(ctx, own)
	return ctx, source, func() {
		source.Close()
		cancel()
	}
}

func (c *command) x509Source(ctx context.Context, own spiffeid.ID) *workloadapi.X509Source {
	opts := []workloadapi.X509SourceOption{workloadapi.WithClientOptions(c.clientOptions()...)}
	if !own.IsZero() {
		opts = append(opts, workloadapi.WithDefaultX509SVIDPicker(func(svids []*x509svid.SVID) *x509svid.SVID {
			for _, s := range svids {
				if s.ID == own {
					return s
				}
			}
			return nil
		}))
	}
	source, err := workloadapi.NewX509Source(ctx, opts...)
	check("X509Source", err)
	return source
}

// check ends the subcommand with fail when err is set.
func check(what string, err error) {
	if err != nil {
		fail(what, err)
	}
}

// mtlsFlags are the flags of the two spiffetls subcommands: the peer to authorize, and which of this
// process's SVIDs to present when the server serves several.
type mtlsFlags struct {
	authorize string
	own       string
}

func (m *mtlsFlags) register(c *command, peer string) {
	c.StringVar(&m.authorize, "authorize", "", "the SPIFFE ID the "+peer+" must have")
	c.StringVar(&m.own, "spiffe-id", "", "present the SVID of this SPIFFE ID (default: the default SVID)")
}

// ids checks both flags once parsed; either being malformed is a usage error.
func (m *mtlsFlags) ids() (allowed, own spiffeid.ID) {
	allowed, err := spiffeid.FromString(m.authorize)
	if err != nil {
		usage("-authorize: " + err.Error())
	}
	if m.own != "" {
		if own, err = spiffeid.FromString(m.own); err != nil {
			usage("-spiffe-id: " + err.Error())
		}
	}
	return allowed, own
}

func main() {
	if len(os.Args) < 2 {
		usage("want a subcommand: x509, bundles, jwt, validate, watch, serve, dial, version")
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "version":
		emit(map[string]any{"go": runtime.Version(), "go_spiffe": goSpiffeVersion()})
	case "x509":
		x509Cmd(args)
	case "bundles":
		bundlesCmd(args)
	case "jwt":
		jwtCmd(args)
	case "validate":
		validateCmd(args)
	case "watch":
		watchCmd(args)
	case "serve":
		serveCmd(args)
	case "dial":
		dialCmd(args)
	default:
		usage("unknown subcommand " + cmd)
	}
}

// goSpiffeVersion reads the linked go-spiffe version from the build info, so titles name what ran.
func goSpiffeVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/spiffe/go-spiffe/v2" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func svidFacts(s *x509svid.SVID) map[string]any {
	leaf := s.Certificates[0]
	return map[string]any{
		"spiffe_id":    s.ID.String(),
		"hint":         s.Hint,
		"chain_length": len(s.Certificates),
		"serial":       leaf.SerialNumber.Text(16),
		"not_after":    leaf.NotAfter.UTC().Format(time.RFC3339),
		"not_before":   leaf.NotBefore.UTC().Format(time.RFC3339),
	}
}

// verified checks the SVID against the bundle set the same server handed out, as a peer would.
func verified(s *x509svid.SVID, bundles x509bundle.Source) error {
	_, _, err := x509svid.Verify(s.Certificates, bundles)
	return err
}

func x509Cmd(args []string) {
	c := newCommand("x509")
	c.parse(args)
	ctx, client, done := c.connect()
	defer done()

	def, err := client.FetchX509SVID(ctx)
	check("FetchX509SVID", err)
	all, err := client.FetchX509SVIDs(ctx)
	check("FetchX509SVIDs", err)
	bundles, err := client.FetchX509Bundles(ctx)
	check("FetchX509Bundles", err)
	own, err := bundles.GetX509BundleForTrustDomain(def.ID.TrustDomain())
	check("own trust domain bundle", err)
	v := svidFacts(def)
	ids := make([]string, 0, len(all))
	for _, s := range all {
		ids = append(ids, s.ID.String())
	}
	v["svids"] = ids
	v["bundle_size"] = len(own.X509Authorities())
	v["trust_domains"] = trustDomains(bundles)
	verr := verified(def, bundles)
	v["verified"] = verr == nil
	if verr != nil {
		v["verify_error"] = verr.Error()
	}
	emit(v)
}

func trustDomains(set *x509bundle.Set) []string {
	var out []string
	for _, b := range set.Bundles() {
		out = append(out, b.TrustDomain().IDString())
	}
	return out
}

func bundlesCmd(args []string) {
	c := newCommand("bundles")
	c.parse(args)
	ctx, client, done := c.connect()
	defer done()

	x, err := client.FetchX509Bundles(ctx)
	check("FetchX509Bundles", err)
	j, err := client.FetchJWTBundles(ctx)
	check("FetchJWTBundles", err)
	xOut := map[string]int{}
	for _, b := range x.Bundles() {
		xOut[b.TrustDomain().IDString()] = len(b.X509Authorities())
	}
	jOut := map[string]int{}
	for _, b := range j.Bundles() {
		jOut[b.TrustDomain().IDString()] = len(b.JWTAuthorities())
	}
	emit(map[string]any{"x509_bundles": xOut, "jwt_bundles": jOut})
}

func jwtCmd(args []string) {
	c := newCommand("jwt")
	var audiences stringList
	var id string
	c.Var(&audiences, "audience", "audience (repeatable; at least one)")
	c.StringVar(&id, "spiffe-id", "", "ask for the JWT-SVID of this SPIFFE ID")
	c.parse(args)
	if len(audiences) == 0 {
		usage("jwt needs -audience")
	}
	params := jwtsvid.Params{Audience: audiences[0], ExtraAudiences: audiences[1:]}
	if id != "" {
		sub, err := spiffeid.FromString(id)
		if err != nil {
			usage("-spiffe-id: " + err.Error())
		}
		params.Subject = sub
	}
	ctx, client, done := c.connect()
	defer done()

	svid, err := client.FetchJWTSVID(ctx, params)
	check("FetchJWTSVID", err)
	// Check the token offline too, with the JWT bundles from the same server.
	bundles, err := client.FetchJWTBundles(ctx)
	check("FetchJWTBundles", err)
	v := map[string]any{
		"spiffe_id": svid.ID.String(),
		"hint":      svid.Hint,
		"audience":  svid.Audience,
		"expiry":    svid.Expiry.UTC().Format(time.RFC3339),
		"token":     svid.Marshal(),
	}
	if _, err := jwtsvid.ParseAndValidate(svid.Marshal(), bundles, []string{audiences[0]}); err != nil {
		v["verified"] = false
		v["verify_error"] = err.Error()
	} else {
		v["verified"] = true
	}
	emit(v)
}

func validateCmd(args []string) {
	c := newCommand("validate")
	var audience, token string
	c.StringVar(&audience, "audience", "", "the audience the token must carry")
	c.StringVar(&token, "token", "", "the compact JWT-SVID, or - to read it from stdin")
	c.parse(args)
	if audience == "" || token == "" {
		usage("validate needs -audience and -token")
	}
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 64*1024))
		check("read token", err)
		token = strings.TrimSpace(string(b))
	}
	ctx, client, done := c.connect()
	defer done()

	svid, err := client.ValidateJWTSVID(ctx, token, audience)
	check("ValidateJWTSVID", err)
	emit(map[string]any{"spiffe_id": svid.ID.String(), "audience": svid.Audience, "claims": svid.Claims})
}

// printer is the X509ContextWatcher of `watch`: one line per update on the one stream it holds.
type printer struct {
	left int
	done context.CancelFunc
	seen int
}

func (p *printer) OnX509ContextUpdate(x *workloadapi.X509Context) {
	p.seen++
	v := svidFacts(x.DefaultSVID())
	v["event"] = "update"
	v["update"] = p.seen
	v["svids"] = len(x.SVIDs)
	v["verified"] = verified(x.DefaultSVID(), x.Bundles) == nil
	emit(v)
	if p.seen >= p.left {
		p.done()
	}
}

func (p *printer) OnX509ContextWatchError(err error) {
	if p.seen >= p.left {
		// The watch was ended here, after the last update: the error is that cancellation.
		return
	}
	// go-spiffe retries UNAVAILABLE itself, on a new stream; report each error so a test can see
	// that the updates came on one stream, and keep watching.
	v := map[string]any{"event": "watch_error", "error": err.Error()}
	if code := grpcCode(err); code != "" {
		v["code"] = code
	}
	emit(v)
}

func watchCmd(args []string) {
	c := newCommand("watch")
	var updates int
	c.IntVar(&updates, "updates", 2, "exit after this many updates")
	c.parse(args)
	if updates < 1 || updates > maxUpdates {
		usage(fmt.Sprintf("-updates must be between 1 and %d", maxUpdates))
	}
	ctx, client, done := c.connect()
	defer done()

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	p := &printer{left: updates, done: stop}
	err := client.WatchX509Context(watchCtx, p)
	if p.seen >= updates {
		emit(map[string]any{"event": "done", "updates": p.seen})
		return
	}
	fail(fmt.Sprintf("watch ended after %d of %d updates", p.seen, updates), err)
}

func serveCmd(args []string) {
	c := newCommand("serve")
	var m mtlsFlags
	var addr string
	var requests int
	m.register(c, "client")
	c.StringVar(&addr, "addr", "127.0.0.1:0", "address to listen on")
	c.IntVar(&requests, "requests", 1, "exit after answering this many requests")
	c.parse(args)
	allowed, ownID := m.ids()
	if requests < 1 || requests > maxUpdates {
		usage(fmt.Sprintf("-requests must be between 1 and %d", maxUpdates))
	}
	ctx, source, done := c.openSource(ownID)
	defer done()

	own, err := source.GetX509SVID()
	check("own SVID", err)
	ln, err := spiffetls.ListenWithMode(ctx, "tcp", addr, spiffetls.MTLSServerWithSource(tlsconfig.AuthorizeID(allowed), source))
	check("listen", err)
	defer ln.Close()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	emit(map[string]any{"event": "listening", "addr": ln.Addr().String(), "spiffe_id": own.ID.String()})

	answered := 0
	for answered < requests {
		conn, err := ln.Accept()
		check(fmt.Sprintf("accept after %d of %d requests", answered, requests), err)
		if handle(conn, own.ID) {
			answered++
		}
	}
	emit(map[string]any{"event": "done", "requests": answered})
}

// handle answers one request on an mTLS connection. A client refused in the handshake is reported
// and does not count as an answered request.
func handle(conn net.Conn, own spiffeid.ID) bool {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxLine), maxLine).ReadString('\n')
	if err != nil {
		// The handshake runs on first read: an unauthorized client fails here.
		emit(map[string]any{"event": "refused", "error": err.Error()})
		return false
	}
	peer, err := spiffetls.PeerIDFromConn(conn)
	if err != nil {
		emit(map[string]any{"event": "refused", "error": err.Error()})
		return false
	}
	msg := strings.TrimRight(line, "\r\n")
	emit(map[string]any{"event": "request", "peer": peer.String(), "message": msg})
	reply, _ := json.Marshal(map[string]any{"server": own.String(), "peer": peer.String(), "echo": msg})
	if _, err := conn.Write(append(reply, '\n')); err != nil {
		emit(map[string]any{"event": "write_error", "error": err.Error()})
	}
	return true
}

func dialCmd(args []string) {
	c := newCommand("dial")
	var m mtlsFlags
	var addr, message string
	m.register(c, "server")
	c.StringVar(&addr, "addr", "", "HOST:PORT of the server")
	c.StringVar(&message, "message", "hello", "the one line to send")
	c.parse(args)
	if addr == "" {
		usage("dial needs -addr")
	}
	allowed, ownID := m.ids()
	if strings.ContainsAny(message, "\r\n") || len(message) > maxLine/2 {
		usage("-message must be one short line")
	}
	ctx, source, done := c.openSource(ownID)
	defer done()

	conn, err := spiffetls.DialWithMode(ctx, "tcp", addr, spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(allowed), source))
	check("dial", err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	_, err = conn.Write([]byte(message + "\n"))
	check("write", err)
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxLine), maxLine).ReadString('\n')
	check("read reply", err)
	peer, err := spiffetls.PeerIDFromConn(conn)
	check("server ID", err)
	var reply map[string]any
	check("reply is not JSON", json.Unmarshal([]byte(line), &reply))
	emit(map[string]any{"event": "response", "server": peer.String(), "reply": reply})
}
