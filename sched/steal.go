package sched

// steal takes half of another worker's local queue, or a share of the global
// queue, for w, which searches (modeMulti only). Victims are visited from a
// random one on, so that searchers spread out. It returns nil if it found
// nothing in stealRounds passes.
func (w *worker) steal() *Task {
	s := w.s
	n := uint32(len(s.ws))
	for range stealRounds {
		w.rng ^= w.rng << 13
		w.rng ^= w.rng >> 17
		w.rng ^= w.rng << 5
		off := w.rng % n
		for i := range n {
			v := s.ws[(off+i)%n]
			if v == w {
				continue
			}
			if t := v.q.Steal(&w.q); t != nil {
				return t
			}
		}
		if s.gsize.Load() > 0 {
			if t := s.globalTake(w); t != nil {
				return t
			}
		}
	}
	return nil
}
