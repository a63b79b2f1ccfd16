package gen

import "strconv"

// resolveProducts resolves the product declarations once every machine is known.
func (r *resolver) resolveProducts(files []*rawFile) {
	names := map[string]Pos{}
	for _, f := range files {
		if f.product == nil {
			continue
		}
		rp := f.product
		if prev, dup := names[rp.name]; dup {
			r.d.add(rp.pos, "product %q declared twice (first at %s)", rp.name, posString(prev))
			continue
		}
		names[rp.name] = rp.pos
		if pr := r.product(rp); pr != nil {
			r.pkg.Products = append(r.pkg.Products, pr)
		}
	}
}

func (r *resolver) product(rp *rawProduct) *Product {
	before := len(r.d.list)
	r.needDesc(rp.pos, "product "+strconv.Quote(rp.name), rp.desc)
	pr := &Product{Name: rp.name, Description: rp.desc, Pos: rp.pos}
	comps := nameIndex{}
	for _, c := range rp.components {
		mi := -1
		for i, m := range r.pkg.Machines {
			if m.Name == c.machine.name {
				mi = i
			}
		}
		if mi < 0 {
			r.d.add(c.machine.pos, "component %q: unknown machine %q", c.name, c.machine.name)
			continue
		}
		if c.count < 1 || c.count > 8 {
			r.d.add(c.pos, "component %q: count must be between 1 and 8", c.name)
		}
		m := r.pkg.Machines[mi]
		comp := Component{Name: c.name, Machine: mi, Count: c.count, Internal: make([]bool, len(m.Events)), Options: make([]int, len(m.Vars))}
		for i := range comp.Options {
			comp.Options[i] = -1
		}
		for _, o := range c.options {
			vi := -1
			for i, v := range m.Vars {
				if v.Name == o.name {
					vi = i
				}
			}
			if vi < 0 || !m.Vars[vi].Option {
				r.d.add(o.pos, "component %q: machine %q has no option %q", c.name, m.Name, o.name)
				continue
			}
			p := &parser{file: o.pos.File, d: r.d}
			if e := p.parseExpr(o.value, exprScope{m: m}, m.Vars[vi].Kind, vi); e != nil {
				if e.Op != OpConst {
					r.d.add(o.pos, "component %q: option %q must be a constant", c.name, o.name)
				} else if e.Value < m.Vars[vi].Min || e.Value > m.Vars[vi].Max {
					r.d.add(o.pos, "component %q: option %q value %d outside %d..%d", c.name, o.name, e.Value, m.Vars[vi].Min, m.Vars[vi].Max)
				} else {
					comp.Options[vi] = e.Value
				}
			}
		}
		if c.internal.set {
			for _, e := range r.set(c.internal, rawList{}, eventIndex(m), len(m.Events), "event of machine "+strconv.Quote(m.Name), "internal", "") {
				comp.Internal[e] = true
			}
		}
		comps[c.name] = len(pr.Components)
		pr.Components = append(pr.Components, comp)
	}
	if len(pr.Components) == 0 {
		r.d.add(rp.pos, "product %q has no components", rp.name)
	}
	for _, s := range rp.sync {
		from, ok := comps[s.from.name]
		if !ok {
			r.d.add(s.from.pos, "sync: unknown component %q", s.from.name)
			continue
		}
		fm := r.pkg.Machines[pr.Components[from].Machine]
		sy := Sync{From: from, Action: -1, OnReject: -1, Pos: s.pos}
		if s.onReject.name != "" {
			sy.OnReject, sy.OnRejectOutcome = r.eventRef(fm, s.onReject, s.onRejectOutcome, "onReject")
		} else if s.onRejectOutcome.name != "" {
			r.d.add(s.onRejectOutcome.pos, "sync: onRejectOutcome without onReject")
		}
		for i, a := range fm.Actions {
			if a.Name == s.action.name {
				sy.Action = i
			}
		}
		if sy.Action < 0 {
			r.d.add(s.action.pos, "sync: machine %q has no action %q", fm.Name, s.action.name)
		}
		var tm *Machine
		if s.to.name == "sender" {
			sy.To = SyncSender
		} else if to, ok := comps[s.to.name]; ok {
			sy.To = to
			tm = r.pkg.Machines[pr.Components[to].Machine]
		} else {
			r.d.add(s.to.pos, "sync: unknown component %q (or \"sender\")", s.to.name)
			continue
		}
		// A rule to "sender" names the event by the machines that may send: every
		// component other than From must have it.
		targets := []*Machine{tm}
		if tm == nil {
			targets = nil
			for i, c := range pr.Components {
				if i != from {
					targets = append(targets, r.pkg.Machines[c.Machine])
				}
			}
		}
		sy.Event = -1
		sy.EventName = s.event.name
		for _, m := range targets {
			e, ok := eventIndex(m)[s.event.name]
			if !ok {
				if tm != nil {
					r.d.add(s.event.pos, "sync: machine %q has no event %q", m.Name, s.event.name)
				}
				continue
			}
			if sy.Event >= 0 && sy.Event != e {
				r.d.add(s.event.pos, "sync to sender: event %q has different numbers in the possible senders; give it the same position", s.event.name)
			}
			sy.Event = e
			enum := m.Events[e].Outcome
			switch {
			case enum < 0 && s.outcome.name != "":
				r.d.add(s.outcome.pos, "sync: event %q carries no outcome", s.event.name)
			case enum >= 0 && s.outcome.name == "":
				r.d.add(s.pos, "sync: event %q carries outcome %q: say which", s.event.name, r.pkg.Outcomes[enum].Name)
			case enum >= 0:
				found := false
				for i, v := range r.pkg.Outcomes[enum].Values {
					if v.Name == s.outcome.name {
						sy.Outcome, found = i, true
					}
				}
				if !found {
					r.d.add(s.outcome.pos, "%q is not an outcome of %q", s.outcome.name, r.pkg.Outcomes[enum].Name)
				}
			}
		}
		if sy.Event < 0 && tm == nil {
			r.d.add(s.event.pos, "sync to sender: no other component has an event %q", s.event.name)
		}
		pr.Sync = append(pr.Sync, sy)
	}
	for _, rq := range rp.requests {
		from, ok1 := comps[rq.from.name]
		to, ok2 := comps[rq.to.name]
		if !ok1 {
			r.d.add(rq.from.pos, "request: unknown component %q", rq.from.name)
		}
		if !ok2 {
			r.d.add(rq.to.pos, "request: unknown component %q", rq.to.name)
		}
		if !ok1 || !ok2 {
			continue
		}
		fm, tm := r.pkg.Machines[pr.Components[from].Machine], r.pkg.Machines[pr.Components[to].Machine]
		req := Request{From: from, To: to, OnReject: -1, Pos: rq.pos}
		states := nameIndex{}
		for i, s := range fm.States {
			states[s.Name] = i
		}
		req.States = r.set(rq.states, rawList{}, states, len(fm.States), "state of "+strconv.Quote(fm.Name), "states", "")
		req.Event, req.Outcome = r.eventRef(tm, rq.event, rq.outcome, "request")
		if rq.onReject.name != "" {
			req.OnReject, req.OnRejectOutcome = r.eventRef(fm, rq.onReject, rq.onRejectOutcome, "request onReject")
		} else if rq.onRejectOutcome.name != "" {
			r.d.add(rq.onRejectOutcome.pos, "request: onRejectOutcome without onReject")
		}
		pr.Requests = append(pr.Requests, req)
	}
	if o := rp.outlives; o != nil {
		c, ok := comps[o.component.name]
		if !ok {
			r.d.add(o.component.pos, "outlives: unknown component %q", o.component.name)
		} else {
			pr.Outlives = &Outlives{Component: c, Others: r.set(o.others, rawList{}, comps, len(pr.Components), "component", "others", "")}
		}
	}
	if len(r.d.list) == before {
		r.productObligations(pr, comps, rp.obligations)
	}
	if len(r.d.list) != before {
		return nil
	}
	return pr
}

// eventRef resolves an event of m with its outcome (required exactly when the
// event carries one).
func (r *resolver) eventRef(m *Machine, ev, out rawName, what string) (int, int) {
	e, ok := eventIndex(m)[ev.name]
	if !ok {
		r.d.add(ev.pos, "%s: machine %q has no event %q", what, m.Name, ev.name)
		return -1, 0
	}
	enum := m.Events[e].Outcome
	switch {
	case enum < 0 && out.name != "":
		r.d.add(out.pos, "%s: event %q carries no outcome", what, ev.name)
	case enum >= 0 && out.name == "":
		r.d.add(ev.pos, "%s: event %q carries outcome %q: say which", what, ev.name, r.pkg.Outcomes[enum].Name)
	case enum >= 0:
		for i, v := range r.pkg.Outcomes[enum].Values {
			if v.Name == out.name {
				return e, i
			}
		}
		r.d.add(out.pos, "%q is not an outcome of %q", out.name, r.pkg.Outcomes[enum].Name)
	}
	return e, 0
}

func eventIndex(m *Machine) nameIndex {
	idx := nameIndex{}
	for i, e := range m.Events {
		idx[e.Name] = i
	}
	return idx
}
