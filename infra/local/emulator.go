package local

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ListenError is a listener of the stack that could not take its address:
// Role names which one ("gateway" or "emulator").
type ListenError struct {
	Role, Addr string
	Err        error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("%s: listen on %s: %v", e.Role, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// emulatorFront serves the emulator on the stack's advertised address.
// kumo v0.33.1's only public constructor (kumo.NewServer) listens on a
// random loopback port, through httptest, and exposes neither its listener
// nor its handler; and its SQS names every queue
// http://localhost:4566/000000000000/NAME, whatever its port (the base URL
// is fixed when the process starts). So the address the stack prints is a
// reverse proxy of ours in front of kumo's, on Config.AWSAddr or a free
// port, which rewrites the queue URLs of SQS's answers to name itself. The
// stack's own clients reach kumo directly; the front is for everything
// outside (the AWS CLI, an SDK, the votes commands).
type emulatorFront struct {
	ln     net.Listener
	server *http.Server
	done   chan struct{}
}

// kumoQueueBase is how kumo's SQS begins every queue URL.
const kumoQueueBase = "http://localhost:4566/"

// frontFor listens on addr ("127.0.0.1:0" for any free port) and proxies
// to target ("http://host:port").
func frontFor(addr, target string) (*emulatorFront, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("emulator: url %s: %w", target, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Role: "emulator", Addr: addr, Err: err}
	}
	f := &emulatorFront{ln: ln, done: make(chan struct{})}
	base := []byte(f.URL() + "/")
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	proxy.ModifyResponse = func(r *http.Response) error {
		if !strings.HasPrefix(r.Request.Header.Get("X-Amz-Target"), "AmazonSQS.") {
			return nil // only SQS answers name queue URLs; others pass untouched
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte(kumoQueueBase), base)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	f.server = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(f.done)
		_ = f.server.Serve(ln)
	}()
	return f, nil
}

// URL is the front's address as an endpoint.
func (f *emulatorFront) URL() string { return "http://" + f.ln.Addr().String() }

// close stops the front and cuts its connections.
func (f *emulatorFront) close() {
	f.server.Close()
	<-f.done
}

// queueURL is a queue's URL on endpoint. kumo names every queue
// http://localhost:4566/000000000000/NAME, whatever its port (its SQS base
// URL is fixed when the process starts), and finds a queue by the URL's
// path whatever its host: the stack hands out URLs that name the address
// the emulator is really reached at. (With an endpoint given, the URLs are
// the emulator's own: kumo finds them by an exact match, without walking
// every queue of a process-global store.)
func queueURL(endpoint, returned string) string {
	u, err := url.Parse(returned)
	if err != nil || u.Path == "" {
		return returned
	}
	return endpoint + u.Path
}
