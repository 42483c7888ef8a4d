// What integrating one file produced; shared by `integrate` and its per-language halves.
export interface HeartbeatHint {
  /** 1-based line in the integrated file */
  line: number;
  code: string;
  /** the call to add inside it */
  add: string;
}

export interface Integration {
  source: string;
  status: string;
  agentName?: string;
  hints: HeartbeatHint[];
}
