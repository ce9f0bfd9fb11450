/** Progress of a long step, reported to CLI progress bars and service logs. */
export interface ProgressEvent {
  phase: 'backup' | 'upload' | 'download' | 'extract' | 'verify' | 'sync' | 'start';
  artifact?: string;
  /** Logical bytes processed so far. */
  bytes: number;
  /**
   * Expected logical bytes, when known: an estimate for phase 'backup' (the database's size, which
   * a base backup can exceed; absent for a dump), exact for the others (manifest bytes). Without it
   * there is no percentage to show.
   */
  totalBytes?: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Told of a problem that does not change an operation's outcome (a failed backup's cleanup that failed too). */
export type WarningListener = (message: string) => void;
