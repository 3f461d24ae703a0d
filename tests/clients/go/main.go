// Go net/http through smokescreen (docs/clients.md, tested by run.sh). The
// test CA comes from SSL_CERT_FILE.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

func fail(format string, args ...any) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func get(client *http.Client, target string) (*http.Response, string, error) {
	resp, err := client.Get(target)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

func main() {
	// --- recipe ---
	proxyURL, err := url.Parse(os.Getenv("PROXY_URL")) // http://user:percent-encoded-password@host:4750
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get("https://api.example.com/")
	// --- end ---
	if err != nil {
		fail("https: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "hello from api.example.com\n" {
		fail("https: %v %d %q", err, resp.StatusCode, body)
	}
	if resp, _, err := get(client, "http://api.example.com/"); err != nil || resp.StatusCode != 200 {
		fail("http: %v", err)
	}

	// --- recipe: or from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) ---
	envClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	// --- end ---
	os.Setenv("HTTPS_PROXY", os.Getenv("PROXY_URL"))
	if resp, _, err := get(envClient, "https://api.example.com/"); err != nil || resp.StatusCode != 200 {
		fail("https from the environment: %v", err)
	}

	// A refused https:// request: the error is the CONNECT status text only.
	_, _, err = get(client, "https://denied.example.com/")
	fmt.Println("denial (https):", err)
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		fail("https denial: %v", err)
	}
	// A refused http:// request: a 403 response with the reason.
	resp, text, err := get(client, "http://denied.example.com/")
	if err != nil {
		fail("http denial: %v", err)
	}
	fmt.Println("denial (http):", resp.StatusCode, resp.Header.Get("X-Smokescreen-Error"))
	if resp.StatusCode != 403 || !strings.Contains(text, "denied to host") {
		fail("http denial: %d %q", resp.StatusCode, text)
	}

	// Pitfall: + / = unencoded in the URL: url.Parse refuses it
	// ("invalid port ... after host").
	raw := fmt.Sprintf("http://%s:%s@127.0.0.1:4750", os.Getenv("PROXY_USER"), os.Getenv("PROXY_PASS"))
	if _, err := url.Parse(raw); err == nil {
		fail("an unencoded password with / parsed")
	} else {
		fmt.Println("pitfall (unencoded password):", err)
	}
	fmt.Println("go: all checks passed")
}
