package main

import (
	"flag"
	"io"
)

// interleavedArgs parses flags that may come before or after positional
// arguments (flag stops at the first positional) and returns the positionals.
func interleavedArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
