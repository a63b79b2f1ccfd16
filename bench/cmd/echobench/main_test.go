package main

import (
	"testing"
)

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-c", "50,500", "-servers", "c,gnet"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.conns) != 2 || cfg.conns[1] != 500 || len(cfg.servers) != 2 || cfg.runs != 3 {
		t.Errorf("parseFlags = %+v", cfg)
	}
	if _, err := parseFlags([]string{"-servers", "nginx"}); err == nil {
		t.Error("an unknown server was accepted")
	}
}
