// Dependency-free: the admin API types (and the dashboard) use it too.

/** What a node says about itself in answer to `hello`. */
export interface HelloAnswer {
  nodeId: string;
  group: string;
  /** Tag that ends the ids of the durable messages this node owns. */
  qosTag?: string;
  /** This node keeps copies of its peers' durable messages (`qos.replication`: a SQLite store). */
  qosCopies?: boolean;
  /** This node answers `qos-pull-me` (earlier builds of protocol 2 do not: they are never sent one). */
  qosPullMe?: boolean;
  /** This node answers `window-took` (earlier builds of protocol 2 do not: they are never asked). */
  windowTook?: boolean;
  protocol: number;
}
