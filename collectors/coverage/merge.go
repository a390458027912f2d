package coverage

// Merge adds another report's records to r: lines and branches by sum
// (hit when the sum is above 0), functions by sum, Go blocks as the cover
// tool merges them (by sum; a set-mode block is 0 or 1), counters by sum.
func (r *Report) Merge(o *Report) {
	// Reports are merged after each was parsed within its limits.
	b := r.budget
	r.budget = nil
	defer func() { r.budget = b }()
	for name, of := range o.files {
		f := r.files[name]
		if f == nil {
			f = &fileCov{lineOnly: of.lineOnly}
			r.files[name] = f
		}
		f.merge(of)
	}
	for name, of := range o.splitOnly {
		f := r.splitFile(name)
		f.merge(of)
	}
	e, x := &r.extra, o.extra
	e.Lines, e.Branches, e.Functions, e.Statements = add(e.Lines, x.Lines), add(e.Branches, x.Branches), add(e.Functions, x.Functions), add(e.Statements, x.Statements)
	e.hasLines, e.hasBranches = e.hasLines || x.hasLines, e.hasBranches || x.hasBranches
	e.hasFunctions, e.hasStatements = e.hasFunctions || x.hasFunctions, e.hasStatements || x.hasStatements
	r.HeaderMismatch = r.HeaderMismatch || o.HeaderMismatch
	r.declared |= o.declared
}

func (f *fileCov) merge(o *fileCov) {
	o.eachLine(func(n int, v int64) { f.addLine(n, v-1) })
	for _, b := range o.branches {
		f.addBranch(int(b.line), b.id, boolInt(b.taken))
	}
	for k, v := range o.funcs {
		f.addFunc(k, v)
	}
	if len(o.blocks) > 0 && f.blocks == nil {
		f.blocks = map[blockKey]*block{}
	}
	for k, b := range o.blocks {
		if cur := f.blocks[k]; cur != nil {
			cur.count = satAdd(cur.count, b.count)
		} else {
			f.blocks[k] = &block{stmts: b.stmts, count: b.count}
		}
	}
	for l := range o.partial {
		f.markPartial(l)
	}
}
