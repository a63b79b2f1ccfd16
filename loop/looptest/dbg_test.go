package looptest_test
import ("testing";"os";"strings"; "github.com/fsmkernel/fsmkernel/loop/looptest")
func TestDbgSeed(t *testing.T){
	sc := randomSchedule(0xaf2)
	var tr []string
	looptest.Check(t, sc.Seed, func(s *looptest.Sim){
		s.KeepTrace()
		defer func(){ tr = s.Trace() }()
		w := &world{s: s, sc: sc, tables: looptest.NewTables(), reading: map[*looptest.Peer]bool{}, byAddr: map[string]*chanRec{}, rng: newRng(sc.Seed)}
		w.run()
	})
	os.WriteFile("/tmp/trace.txt", []byte(strings.Join(tr, "\n")), 0o644)
}
