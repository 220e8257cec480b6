/** Held chunks beyond this are dropped; the stored tail fills in for them. */
const HELD_MAX_BYTES = 4 * 1024 * 1024;

/** What the cursor needs of a stored log tail (RunStore.logSnapshot). */
export interface TailSnapshot {
  readonly text: string;
  /** The attempt whose output the tail holds; absent for a run that never started a container. */
  readonly attempt?: number;
  /** The offset in that attempt's output at which `text` ends; absent like `attempt`. */
  readonly end?: number;
}

/**
 * A follower's position in a run's output (see log-stream.ts for the messages it is fed):
 * the attempt it is on, `sent` (the offset up to which it has written) and the chunks held
 * back because they start beyond `sent`. It does no I/O: every method returns the pieces
 * to write, in order, so the caller owns the socket and the cursor can be tested alone.
 */
export class LogCursor {
  private cur = 0;
  private sentBytes = 0;
  /** Last byte written, so a notice we insert starts on a line of its own. */
  private lastByte = 0x0a;
  private held: { offset: number; bytes: Buffer }[] = [];
  private heldBytes = 0;
  private pieces: Buffer[] = [];

  /** The attempt being followed; 0 before the first message or tail with one. */
  get attempt(): number {
    return this.cur;
  }

  /** Offset in the current attempt's output up to which everything has been written. */
  get sent(): number {
    return this.sentBytes;
  }

  /** Moves to `attempt` if it is later than the current one; an earlier one changes nothing. */
  toAttempt(attempt: number): Buffer[] {
    this.switchTo(attempt);
    return this.flush();
  }

  /**
   * The chunk at `offset` of the current attempt: what it adds beyond `sent` is written,
   * the rest dropped; a chunk that starts beyond `sent` is held until the gap is filled.
   */
  take(offset: number, bytes: Buffer): Buffer[] {
    this.accept(offset, bytes);
    this.drainHeld();
    return this.flush();
  }

  /**
   * Fills [sent, end) from the stored tail. The tail's bytes are its text re-encoded, exact
   * for UTF-8 output (a non-UTF-8 byte comes back as U+FFFD and may shift the join by a few).
   */
  fromTail(snap: TailSnapshot): Buffer[] {
    if (snap.attempt !== undefined) this.switchTo(snap.attempt);
    const text = Buffer.from(snap.text);
    if (snap.end === undefined || snap.attempt === undefined) {
      // Position unknown (a run that never started a container): all or nothing.
      if (this.sentBytes === 0) {
        this.out(text);
        this.sentBytes = text.length;
      }
      return this.flush();
    }
    // A tail of an earlier attempt, or one we are already past, has nothing for us.
    if (snap.attempt !== this.cur || snap.end <= this.sentBytes) return this.flush();
    const start = snap.end - text.length;
    if (this.sentBytes < start)
      this.out(Buffer.from(`${this.newline()}[runlet: ${start - this.sentBytes} bytes of output were not kept]\n`));
    this.out(text.subarray(Math.max(0, this.sentBytes - start)));
    this.sentBytes = snap.end;
    this.drainHeld();
    return this.flush();
  }

  private switchTo(attempt: number): void {
    if (attempt <= this.cur) return;
    // A retry's output starts at offset 0 again; say where one attempt ends and the next begins.
    if (this.cur > 0) this.out(Buffer.from(`${this.newline()}--- runlet: attempt ${attempt} ---\n`));
    this.cur = attempt;
    this.sentBytes = 0;
    this.held = [];
    this.heldBytes = 0;
  }

  private accept(offset: number, bytes: Buffer): void {
    if (offset > this.sentBytes) {
      if (this.heldBytes + bytes.length <= HELD_MAX_BYTES) {
        this.held.push({ offset, bytes });
        this.heldBytes += bytes.length;
      }
      return;
    }
    if (offset + bytes.length <= this.sentBytes) return;
    this.out(bytes.subarray(this.sentBytes - offset));
    this.sentBytes = offset + bytes.length;
  }

  private drainHeld(): void {
    this.held.sort((a, b) => a.offset - b.offset);
    while (this.held.length > 0 && this.held[0]!.offset <= this.sentBytes) {
      const h = this.held.shift()!;
      this.heldBytes -= h.bytes.length;
      this.accept(h.offset, h.bytes);
    }
  }

  private newline(): string {
    return this.lastByte === 0x0a ? '' : '\n';
  }

  private out(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.lastByte = bytes[bytes.length - 1]!;
    this.pieces.push(bytes);
  }

  private flush(): Buffer[] {
    const pieces = this.pieces;
    this.pieces = [];
    return pieces;
  }
}
