package simtest

import "fmt"

// KVInput is an operation on a key-value store of strings, for the model
// KV: KVGet, KVPut, KVAppend or KVCAS.
type KVInput struct {
	op         kvOp
	key, value string
	old        string // KVCAS's expected value
}

type kvOp uint8

const (
	kvGet kvOp = iota
	kvPut
	kvAppend
	kvCAS
)

// KVGet reads the value of key. It answers KVOutput{Value: v}, where v is
// "" for a key never written.
func KVGet(key string) KVInput { return KVInput{op: kvGet, key: key} }

// KVPut sets the value of key to value. It answers KVOutput{}.
func KVPut(key, value string) KVInput { return KVInput{op: kvPut, key: key, value: value} }

// KVAppend appends value to the value of key. It answers KVOutput{}.
func KVAppend(key, value string) KVInput { return KVInput{op: kvAppend, key: key, value: value} }

// KVCAS sets the value of key to value if it is old (compare and swap). It
// answers KVOutput{OK: true} if it did, KVOutput{} if not.
func KVCAS(key, old, value string) KVInput {
	return KVInput{op: kvCAS, key: key, value: value, old: old}
}

// Key returns the key the operation reads or writes.
func (in KVInput) Key() string { return in.key }

// String shows the operation as a call: Get("x"), Put("x", "1"),
// Append("x", "1"), CAS("x", "1", "2").
func (in KVInput) String() string {
	switch in.op {
	case kvGet:
		return fmt.Sprintf("Get(%q)", in.key)
	case kvPut:
		return fmt.Sprintf("Put(%q, %q)", in.key, in.value)
	case kvAppend:
		return fmt.Sprintf("Append(%q, %q)", in.key, in.value)
	}
	return fmt.Sprintf("CAS(%q, %q, %q)", in.key, in.old, in.value)
}

// KVOutput is what an operation of KV answers.
type KVOutput struct {
	Value string // KVGet's value
	OK    bool   // whether KVCAS swapped
}

// KVHistory is a History of operations on a key-value store, for KV.
type KVHistory = History[KVInput, KVOutput]

// KV returns the model of a linearizable key-value store of strings, whose
// keys all start empty: its operations are KVGet, KVPut, KVAppend and KVCAS.
// Each key is a partition, checked apart from the others, and its state is
// its value.
//
//	h := new(simtest.KVHistory)
//	op := h.Invoke(t, simtest.KVGet("x"))
//	v := store.Get(t, "x")
//	op.Return(t, simtest.KVOutput{Value: v})
//	...
//	return simtest.CheckLinearizable(h, simtest.KV())
func KV() Model[string, KVInput, KVOutput] {
	return Model[string, KVInput, KVOutput]{
		Step:      kvStep,
		Partition: KVInput.Key,
		Describe:  kvDescribe,
	}
}

func kvStep(value string, in KVInput) (string, KVOutput) {
	switch in.op {
	case kvGet:
		return value, KVOutput{Value: value}
	case kvPut:
		return in.value, KVOutput{}
	case kvAppend:
		return value + in.value, KVOutput{}
	}
	if value != in.old {
		return value, KVOutput{}
	}
	return in.value, KVOutput{OK: true}
}

// kvDescribe shows an operation that answered out: Get("x") -> "1",
// CAS("x", "1", "2") -> true, and Put("x", "1") alone unless it answered
// something else than KVOutput{}.
func kvDescribe(in KVInput, out KVOutput) string {
	switch {
	case in.op == kvGet && !out.OK:
		return fmt.Sprintf("%v -> %q", in, out.Value)
	case in.op == kvCAS && out.Value == "":
		return fmt.Sprintf("%v -> %t", in, out.OK)
	case in.op != kvGet && in.op != kvCAS && out == KVOutput{}:
		return in.String()
	}
	return fmt.Sprintf("%v -> %+v", in, out)
}
