// Package lookingglass implements bagpipe-looking-glass, the command-line
// client of the bagpipe-bgp looking glass (GET /looking-glass/...). It
// fetches one looking-glass object and pretty-prints it exactly as the
// reference Python tool does, including its messages for errors.
package lookingglass

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"bagpipe/internal/cli/cmdline"
	"bagpipe/internal/pyjson"
)

// configFile is the configuration file giving the default --port.
var configFile = cmdline.DefaultConfigFile

// requestTimeout bounds each HTTP request.
const requestTimeout = time.Minute

// options is the parsed command line.
type options struct {
	server  string
	port    int
	prefix  string
	recurse bool
	json    bool
	offset  int      // paging of large lists (not in the reference)
	limit   int      // -1: no limit
	path    []string // looking-glass path elements, unquoted
	// unixSocket, when set, is the API's Unix socket (not in the reference).
	unixSocket string
}

// Run is the bagpipe-looking-glass command. args excludes the program name.
// It returns the process exit status: like the reference tool it reports
// HTTP and connection errors on stdout and exits with 0.
func Run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args, stdout, stderr)
	if err != nil {
		return cmdline.ExitStatus(err)
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	if err := opts.show(out, newClient(opts.unixSocket)); err != nil {
		out.Flush()
		fmt.Fprintf(stderr, "bagpipe-looking-glass: %v\n", err)
		return 1
	}
	return 0
}

func parseArgs(args []string, stdout, stderr io.Writer) (*options, error) {
	cmd := cmdline.New("bagpipe-looking-glass",
		"bagpipe-looking-glass [options] [path to object in looking-glass...]\n\n"+
			"e.g.: bagpipe-looking-glass vpns instances", stdout, stderr)
	opts := &options{}
	cmd.StringVar(&opts.server, "server", "127.0.0.1", "IP address of BaGPipe BGP (optional, default: 127.0.0.1)")
	cmd.IntVar(&opts.port, "port", cmdline.DefaultAPIPort, "Port of BaGPipe BGP (optional, default: [API] port of "+
		configFile+", else 8082)")
	cmd.StringVar(&opts.unixSocket, "unix-socket", "", cmdline.UnixSocketUsage)
	cmd.StringVar(&opts.prefix, "prefix", "looking-glass", "Looking-glass URL Prefix (optional, default: looking-glass)")
	cmd.BoolVar(&opts.recurse, "recurse", false, "Recurse down into the whole looking-glass (disabled by default)")
	cmd.Alias("r", "recurse")
	cmd.BoolVar(&opts.json, "json", false, "print the JSON document (after following a top-level href) "+
		"indented instead of pretty-printing it; no recursion")
	cmd.IntVar(&opts.offset, "offset", 0, "skip the first N items of the lists (routes) of the object (default: 0)")
	cmd.IntVar(&opts.limit, "limit", -1, "show at most N items of the lists (routes) of the object (default: all)")
	path, err := cmd.Parse(args)
	if err != nil {
		return nil, err
	}
	if opts.offset < 0 {
		return nil, cmd.Fail("--offset must not be negative")
	}
	opts.path = path
	if !cmd.IsSet("port") {
		opts.port, err = cmdline.APIPort(configFile)
		if errors.Is(err, fs.ErrNotExist) {
			opts.port, err = cmdline.DefaultAPIPort, nil
		}
		if err != nil {
			return nil, cmd.Fail(fmt.Sprintf("cannot get the default --port: %v", err))
		}
	}
	return opts, nil
}

// show fetches the object and prints it, or the error message of the
// reference tool, on w. Only an invalid JSON document is returned as an
// error.
func (o *options) show(w io.Writer, c *client) error {
	quoted := make([]string, len(o.path))
	for i, elem := range o.path {
		quoted[i] = pyQuote(elem)
	}
	url := fmt.Sprintf("http://%s:%d/%s/%s", o.server, o.port, o.prefix, strings.Join(quoted, "/"))
	if o.offset > 0 || o.limit >= 0 {
		url += fmt.Sprintf("?offset=%d", o.offset)
		if o.limit >= 0 {
			url += fmt.Sprintf("&limit=%d", o.limit)
		}
	}

	err := o.fetchAndPrint(w, c, &url)
	var httpErr *httpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &httpErr) && httpErr.status == http.StatusNotFound:
		fmt.Fprintf(w, "No such looking glass path: %s\n(%s)\n", strings.Join(quoted, " "), url)
	case errors.As(err, &httpErr):
		fmt.Fprintf(w, "Error code %d: %s\n", httpErr.status, pyBytesRepr(httpErr.body))
	case errors.As(err, new(*jsonError)):
		return err
	default:
		fmt.Fprintf(w, "No server at http://%s:%d : <urlopen error %s>\n", o.server, o.port, urlopenReason(err))
	}
	return nil
}

// fetchAndPrint gets the document at *url, follows it if it is a bare link
// (an object with an "href"), updating *url, and prints it.
func (o *options) fetchAndPrint(w io.Writer, c *client, url *string) error {
	status, body, err := c.fetch(*url)
	if err != nil || status != http.StatusOK {
		return err
	}
	doc, err := decode(*url, body)
	if err != nil {
		return err
	}
	if target, ok := linkTarget(doc); ok {
		status, targetBody, err := c.fetch(target)
		if err != nil {
			return err
		}
		if status == http.StatusOK {
			if doc, err = decode(target, targetBody); err != nil {
				return err
			}
			*url, body = target, targetBody
		}
	}
	if o.json {
		var indented bytes.Buffer
		if err := json.Indent(&indented, body, "", "  "); err != nil {
			return &jsonError{*url, err}
		}
		indented.WriteByte('\n')
		_, err := indented.WriteTo(w)
		return err
	}
	p := &printer{w: w, recurse: o.recurse, fetch: c.fetchDocument}
	return p.print(doc, 0, *url, true)
}

// linkTarget returns the "href" of doc if doc is an object with one.
func linkTarget(doc any) (string, bool) {
	obj, _ := doc.(pyjson.Object)
	href, _ := obj.Get("href")
	url, ok := href.(string)
	return url, ok
}

// client fetches looking-glass documents.
type client struct {
	http *http.Client
}

func newClient(socket string) *client {
	return &client{http: &http.Client{Timeout: requestTimeout, Transport: cmdline.Transport(socket)}}
}

// httpError is an HTTP error status (other than 2xx) with its body.
type httpError struct {
	status int
	body   []byte
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP error %d", e.status) }

// jsonError is a document that is not valid JSON.
type jsonError struct {
	url string
	err error
}

func (e *jsonError) Error() string { return fmt.Sprintf("invalid JSON at %s: %v", e.url, e.err) }

func (e *jsonError) Unwrap() error { return e.err }

// fetch gets url (following redirections). A status other than 2xx is
// returned as an *httpError.
func (c *client) fetch(url string) (status int, body []byte, err error) {
	resp, err := c.http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return 0, nil, &httpError{resp.StatusCode, body}
	}
	return resp.StatusCode, body, nil
}

// fetchDocument gets and decodes the document at url; doc is nil unless
// the status is 200.
func (c *client) fetchDocument(url string) (status int, doc any, err error) {
	status, body, err := c.fetch(url)
	if err != nil || status != http.StatusOK {
		return status, nil, err
	}
	doc, err = decode(url, body)
	return status, doc, err
}

func decode(url string, body []byte) (any, error) {
	doc, err := pyjson.Decode(body)
	if err != nil {
		return nil, &jsonError{url, err}
	}
	return doc, nil
}

// urlopenReason describes a connection failure the way Python's URLError
// does, e.g. "[Errno 111] Connection refused".
func urlopenReason(err error) string {
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "[Errno -2] Name or service not known"
	case errors.As(err, &dnsErr):
		return "[Errno -3] Temporary failure in name resolution"
	case errors.As(err, &errno):
		msg := errno.Error()
		return fmt.Sprintf("[Errno %d] %s", int(errno), strings.ToUpper(msg[:1])+msg[1:])
	case os.IsTimeout(err):
		return "timed out"
	}
	return err.Error()
}
