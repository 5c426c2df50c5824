//go:build race

package bugs_test

const raceEnabled = true
