package verify_test

import (
	"os"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

func load(t *testing.T, srcs ...gen.Source) *gen.Package {
	t.Helper()
	pkg, err := gen.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

func TestCheckConnExample(t *testing.T) {
	b, err := os.ReadFile("../gen/testdata/conn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pkg := load(t, gen.Source{Path: "conn.yaml", Data: b})
	res, err := verify.CheckMachine(pkg, pkg.Machines[0], verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(verify.Report([]*verify.Result{res}))
	if !res.OK() {
		t.Fatal(verify.Report([]*verify.Result{res}))
	}
	if res.Configs != 26 {
		t.Errorf("configs = %d, want 26 (as gen.Explore finds)", res.Configs)
	}
	_ = strings.Join
}
