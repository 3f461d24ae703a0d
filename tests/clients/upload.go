// Upload check for the plain-HTTP forwarding path (run by tests/clients/run.sh).
//
//	go run upload.go origin            serve on 127.0.0.1:8080
//	go run upload.go client PROXY URL  POST 5 MB with Expect: 100-continue
//
// The origin is Go's net/http server, which answers Expect: 100-continue
// when the handler first reads the body and replies "<bytes> <sha256>".
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

const size = 5 << 20

func body() []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func origin() {
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		panic(err)
	}
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
}

func client(proxy, target string) {
	p, err := url.Parse(proxy)
	if err != nil {
		panic(err)
	}
	// A long ExpectContinueTimeout: if the proxy held the origin's 100 back,
	// the upload would wait the whole 30 s instead of starting at once.
	tr := &http.Transport{Proxy: http.ProxyURL(p), ExpectContinueTimeout: 30 * time.Second}
	data := body()
	req, err := http.NewRequest("POST", target, bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		fmt.Println("go: request failed:", err)
		os.Exit(1)
	}
	got, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	want := fmt.Sprintf("%d %x", size, sha256.Sum256(data))
	if resp.StatusCode != 200 || string(got) != want {
		fmt.Printf("go: status %d body %q, want %q\n", resp.StatusCode, got, want)
		os.Exit(1)
	}
	fmt.Printf("go net/http Expect 5 MB upload: %d in %.3f s\n", resp.StatusCode, took.Seconds())
	if took > 10*time.Second {
		fmt.Println("go: the upload waited for a 100 Continue that never came")
		os.Exit(1)
	}
}

func main() {
	switch {
	case len(os.Args) == 2 && os.Args[1] == "origin":
		origin()
	case len(os.Args) == 4 && os.Args[1] == "client":
		client(os.Args[2], os.Args[3])
	default:
		fmt.Fprintln(os.Stderr, "usage: upload.go origin | client PROXY_URL TARGET_URL")
		os.Exit(2)
	}
}
