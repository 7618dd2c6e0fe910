package correlate

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
)

// costLimit bounds what one evaluation of a condition may cost (CEL's
// units: about one per operation, and per byte or element a string or list
// function goes over).
const costLimit = 1_000_000

// programOptions meters a condition's cost as it runs only when its worst
// case, estimated from its checked form with every string and list of
// unknown size, could pass the limit (a loop over a list, a regular
// expression over a string): the others cannot, and metering costs every
// evaluation.
func programOptions(env *cel.Env, ast *cel.Ast) ([]cel.ProgramOption, bool) {
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	est, err := env.EstimateCost(ast, unknownSizes{})
	if err != nil || est.Max > costLimit {
		return append(opts, cel.CostLimit(costLimit)), true
	}
	return opts, false
}

// unknownSizes says nothing of sizes or calls: the estimate takes the worst.
type unknownSizes struct{}

func (unknownSizes) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
func (unknownSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
