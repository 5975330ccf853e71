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
//	gospiffe serve    -addr 127.0.0.1:0 -authorize ID [-requests N] [-socket ...]
//	gospiffe dial     -addr HOST:PORT -authorize ID [-message M] [-socket ...]
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

// common holds the flags every subcommand takes.
type common struct {
	socket  string
	timeout time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", "", "Workload API address (default: SPIFFE_ENDPOINT_SOCKET)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long")
}

func (c *common) clientOptions() []workloadapi.ClientOption {
	if c.socket == "" {
		return nil
	}
	return []workloadapi.ClientOption{workloadapi.WithAddr(c.socket)}
}

func (c *common) context() (context.Context, context.CancelFunc) {
	if c.timeout <= 0 || c.timeout > 10*time.Minute {
		usage("-timeout must be between 0 and 10m")
	}
	return context.WithTimeout(context.Background(), c.timeout)
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

func parse(fs *flag.FlagSet, args []string) {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 0 {
		usage("unexpected arguments: " + strings.Join(fs.Args(), " "))
	}
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
	var c common
	fs := flag.NewFlagSet("x509", flag.ContinueOnError)
	c.register(fs)
	parse(fs, args)
	ctx, cancel := c.context()
	defer cancel()

	client, err := workloadapi.New(ctx, c.clientOptions()...)
	if err != nil {
		fail("workload API client", err)
	}
	defer client.Close()
	def, err := client.FetchX509SVID(ctx)
	if err != nil {
		fail("FetchX509SVID", err)
	}
	all, err := client.FetchX509SVIDs(ctx)
	if err != nil {
		fail("FetchX509SVIDs", err)
	}
	bundles, err := client.FetchX509Bundles(ctx)
	if err != nil {
		fail("FetchX509Bundles", err)
	}
	own, err := bundles.GetX509BundleForTrustDomain(def.ID.TrustDomain())
	if err != nil {
		fail("own trust domain bundle", err)
	}
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
	var c common
	fs := flag.NewFlagSet("bundles", flag.ContinueOnError)
	c.register(fs)
	parse(fs, args)
	ctx, cancel := c.context()
	defer cancel()

	client, err := workloadapi.New(ctx, c.clientOptions()...)
	if err != nil {
		fail("workload API client", err)
	}
	defer client.Close()
	x, err := client.FetchX509Bundles(ctx)
	if err != nil {
		fail("FetchX509Bundles", err)
	}
	j, err := client.FetchJWTBundles(ctx)
	if err != nil {
		fail("FetchJWTBundles", err)
	}
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
	var c common
	var audiences stringList
	var id string
	fs := flag.NewFlagSet("jwt", flag.ContinueOnError)
	c.register(fs)
	fs.Var(&audiences, "audience", "audience (repeatable; at least one)")
	fs.StringVar(&id, "spiffe-id", "", "ask for the JWT-SVID of this SPIFFE ID")
	parse(fs, args)
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
	ctx, cancel := c.context()
	defer cancel()

	client, err := workloadapi.New(ctx, c.clientOptions()...)
	if err != nil {
		fail("workload API client", err)
	}
	defer client.Close()
	svid, err := client.FetchJWTSVID(ctx, params)
	if err != nil {
		fail("FetchJWTSVID", err)
	}
	// Check the token offline too, with the JWT bundles from the same server.
	bundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		fail("FetchJWTBundles", err)
	}
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
	var c common
	var audience, token string
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	c.register(fs)
	fs.StringVar(&audience, "audience", "", "the audience the token must carry")
	fs.StringVar(&token, "token", "", "the compact JWT-SVID, or - to read it from stdin")
	parse(fs, args)
	if audience == "" || token == "" {
		usage("validate needs -audience and -token")
	}
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 64*1024))
		if err != nil {
			fail("read token", err)
		}
		token = strings.TrimSpace(string(b))
	}
	ctx, cancel := c.context()
	defer cancel()

	client, err := workloadapi.New(ctx, c.clientOptions()...)
	if err != nil {
		fail("workload API client", err)
	}
	defer client.Close()
	svid, err := client.ValidateJWTSVID(ctx, token, audience)
	if err != nil {
		fail("ValidateJWTSVID", err)
	}
	emit(map[string]any{"spiffe_id": svid.ID.String(), "audience": svid.Audience, "claims": svid.Claims})
}

// printer is the X509ContextWatcher of `watch`: one line per update on the one stream it holds.
type printer struct {
	left   int
	done   context.CancelFunc
	seen   int
	failed error
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
	// go-spiffe retries UNAVAILABLE itself; report each error so a test can see it, keep watching.
	v := map[string]any{"event": "watch_error", "error": err.Error()}
	if code := grpcCode(err); code != "" {
		v["code"] = code
	}
	emit(v)
}

func watchCmd(args []string) {
	var c common
	var updates int
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	c.register(fs)
	fs.IntVar(&updates, "updates", 2, "exit after this many updates")
	parse(fs, args)
	if updates < 1 || updates > maxUpdates {
		usage(fmt.Sprintf("-updates must be between 1 and %d", maxUpdates))
	}
	ctx, cancel := c.context()
	defer cancel()

	client, err := workloadapi.New(ctx, c.clientOptions()...)
	if err != nil {
		fail("workload API client", err)
	}
	defer client.Close()
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	p := &printer{left: updates, done: stop}
	err = client.WatchX509Context(watchCtx, p)
	if p.seen >= updates {
		emit(map[string]any{"event": "done", "updates": p.seen})
		return
	}
	fail(fmt.Sprintf("watch ended after %d of %d updates", p.seen, updates), err)
}

func serveCmd(args []string) {
	var c common
	var addr, authorize string
	var requests int
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.register(fs)
	fs.StringVar(&addr, "addr", "127.0.0.1:0", "address to listen on")
	fs.StringVar(&authorize, "authorize", "", "the one SPIFFE ID allowed to connect")
	fs.IntVar(&requests, "requests", 1, "exit after answering this many requests")
	parse(fs, args)
	allowed, err := spiffeid.FromString(authorize)
	if err != nil {
		usage("-authorize: " + err.Error())
	}
	if requests < 1 || requests > maxUpdates {
		usage(fmt.Sprintf("-requests must be between 1 and %d", maxUpdates))
	}
	ctx, cancel := c.context()
	defer cancel()

	source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(c.clientOptions()...))
	if err != nil {
		fail("X509Source", err)
	}
	defer source.Close()
	own, err := source.GetX509SVID()
	if err != nil {
		fail("own SVID", err)
	}
	ln, err := spiffetls.ListenWithMode(ctx, "tcp", addr, spiffetls.MTLSServerWithSource(tlsconfig.AuthorizeID(allowed), source))
	if err != nil {
		fail("listen", err)
	}
	defer ln.Close()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	emit(map[string]any{"event": "listening", "addr": ln.Addr().String(), "spiffe_id": own.ID.String()})

	answered := 0
	for answered < requests {
		conn, err := ln.Accept()
		if err != nil {
			fail(fmt.Sprintf("accept after %d of %d requests", answered, requests), err)
		}
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
	var c common
	var addr, authorize, message string
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	c.register(fs)
	fs.StringVar(&addr, "addr", "", "HOST:PORT of the server")
	fs.StringVar(&authorize, "authorize", "", "the SPIFFE ID the server must have")
	fs.StringVar(&message, "message", "hello", "the one line to send")
	parse(fs, args)
	if addr == "" {
		usage("dial needs -addr")
	}
	allowed, err := spiffeid.FromString(authorize)
	if err != nil {
		usage("-authorize: " + err.Error())
	}
	if strings.ContainsAny(message, "\r\n") || len(message) > maxLine/2 {
		usage("-message must be one short line")
	}
	ctx, cancel := c.context()
	defer cancel()

	source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(c.clientOptions()...))
	if err != nil {
		fail("X509Source", err)
	}
	defer source.Close()
	conn, err := spiffetls.DialWithMode(ctx, "tcp", addr, spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(allowed), source))
	if err != nil {
		fail("dial", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := conn.Write([]byte(message + "\n")); err != nil {
		fail("write", err)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxLine), maxLine).ReadString('\n')
	if err != nil {
		fail("read reply", err)
	}
	peer, err := spiffetls.PeerIDFromConn(conn)
	if err != nil {
		fail("server ID", err)
	}
	var reply map[string]any
	if err := json.Unmarshal([]byte(line), &reply); err != nil {
		fail("reply is not JSON", err)
	}
	emit(map[string]any{"event": "response", "server": peer.String(), "reply": reply})
}
