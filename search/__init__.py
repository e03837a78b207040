"""Tree search over agent trajectories: selectors, expansion, backpropagation, budgets."""
