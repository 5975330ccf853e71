// x509check verifies X.509-SVID chains with Go's standard library only, as a Go workload that knows
// nothing about SPIFFE libraries would: crypto/x509 Verify against the trust bundle, then the one URI
// SAN read from the leaf.
//
// Usage: x509check CASE_DIR...
//
// Each CASE_DIR holds chain.pem (leaf first, then intermediates) and roots.pem (the trust bundle).
// The first output line is {"go": "<runtime version>"}; then one JSON line per case. The exit status
// is 0 when every case was checked, whatever the verdicts; 2 on a usage error.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

type result struct {
	Case     string `json:"case"`
	OK       bool   `json:"ok"`
	URI      string `json:"uri,omitempty"`
	KeyAlg   string `json:"key_algorithm,omitempty"`
	SigAlg   string `json:"signature_algorithm,omitempty"`
	ChainLen int    `json:"verified_chain_length,omitempty"`
	Error    string `json:"error,omitempty"`
}

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate", filepath.Base(path))
	}
	return certs, nil
}

func check(dir string) result {
	r := result{Case: filepath.Base(dir)}
	chain, err := readCerts(filepath.Join(dir, "chain.pem"))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	roots, err := readCerts(filepath.Join(dir, "roots.pem"))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	leaf := chain[0]
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   time.Now(),
		// SPIFFE leaves carry serverAuth and clientAuth; ExtKeyUsageAny accepts either role.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, c := range roots {
		opts.Roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	verified, err := leaf.Verify(opts)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.ChainLen = len(verified[0])
	r.KeyAlg = leaf.PublicKeyAlgorithm.String()
	r.SigAlg = leaf.SignatureAlgorithm.String()
	if len(leaf.URIs) != 1 {
		r.Error = fmt.Sprintf("leaf has %d URI SANs, want exactly 1", len(leaf.URIs))
		return r
	}
	if leaf.URIs[0].Scheme != "spiffe" {
		r.Error = "the URI SAN is not a spiffe:// URI"
		return r
	}
	r.URI = leaf.URIs[0].String()
	r.OK = true
	return r
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: x509check CASE_DIR...")
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(map[string]string{"go": runtime.Version()}); err != nil {
		os.Exit(1)
	}
	for _, dir := range os.Args[1:] {
		if err := out.Encode(check(dir)); err != nil {
			os.Exit(1)
		}
	}
}
