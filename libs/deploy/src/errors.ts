// The two ways a deployment can be refused before anything runs: a graph that does not
// compile (GraphError, with the YAML path at fault) and a graph the launcher cannot run
// on this host (LaunchError, e.g. a service kind with no entry point yet).

/** A deployment graph that is not valid; the message names the YAML path at fault. */
export class GraphError extends Error {
  override readonly name = 'GraphError';
}

/** A graph, or a scale request, that the local launcher cannot carry out. */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
}
