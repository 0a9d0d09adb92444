//go:build race

// Package racedetect tells whether the race detector is on.
package racedetect

// Enabled is true when built with -race.
const Enabled = true
