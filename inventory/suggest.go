package inventory

import (
	"fmt"
	"strings"
)

// keyAliases maps words people write for a key by habit (from Ansible
// inventories, /etc/hosts…) to the key this schema uses. They are too far
// from the real key for the edit distance to find them.
var keyAliases = map[string]string{
	"ip":       "address",
	"addr":     "address",
	"hostname": "name",
	"pass":     "password",
}

// roleAliases maps the software people think of to the roles that install
// it.
var roleAliases = map[string][]Role{
	"zk":         {RoleZooKeeper},
	"nginx":      {RoleWeb, RoleLB},
	"keepalived": {RoleLB},
	"mariadb":    {RoleMySQL},
	"db":         {RoleMySQL},
	"broker":     {RoleKafka},
}

// suggest returns the candidate closest to word, or "" when none is close
// enough to be a plausible typo. Transpositions count as one edit, so
// "kakfa" is one edit from "kafka".
func suggest(word string, candidates []string) string {
	lw := strings.ToLower(word)
	if a, ok := keyAliases[lw]; ok {
		for _, c := range candidates {
			if c == a {
				return c
			}
		}
	}
	// Short words are one or two edits from almost anything, so they get
	// less slack: "db" is one edit from "lb" but was not meant as it.
	limit := 2
	switch {
	case len(lw) <= 2:
		limit = 0
	case len(lw) <= 4:
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		d := editDistance(lw, strings.ToLower(c))
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean formats a suggestion for a message, or "" without one.
func didYouMean(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", s)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of two neighbours each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows suffice: the swap looks two rows back.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
