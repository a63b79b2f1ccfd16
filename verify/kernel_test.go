package verify_test

import (
	"testing"

	"github.com/fsmkernel/fsmkernel/verify"
)

var kernelSpecs = []string{"../spec/outcomes.yaml", "../spec/errno.yaml", "../spec/eventloop.yaml", "../spec/channel.yaml", "../spec/listener.yaml", "../spec/model/registry.yaml", "../spec/model/kernel.yaml"}

// TestKernelTables model-checks every kernel machine alone and the kernel
// product (loop x registry x 3 channels): the proof make run prints.
func TestKernelTables(t *testing.T) {
	pkg := loadFiles(t, nil, kernelSpecs...)
	for _, m := range pkg.Machines {
		res, err := verify.CheckMachine(pkg, m, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Error(verify.Report([]*verify.Result{res}))
		}
	}
	if len(pkg.Products) != 1 {
		t.Fatalf("want the kernel product, got %d products", len(pkg.Products))
	}
	res, err := verify.CheckProduct(pkg, pkg.Products[0], verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatal(verify.Report([]*verify.Result{res}))
	}
	if res.Configs < 1000 {
		t.Fatalf("the kernel product explored only %d configurations; the synchronisations look broken", res.Configs)
	}
}

func BenchmarkKernelProduct(b *testing.B) {
	pkg := loadFiles(&testing.T{}, nil, kernelSpecs...)
	for b.Loop() {
		if _, err := verify.CheckProduct(pkg, pkg.Products[0], verify.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
