//go:build !race

package coro_test

const raceEnabled = false
