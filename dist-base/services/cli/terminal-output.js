import cliProgress from 'cli-progress';
/**
 * Everything `dips submit` prints while a progress bar may be on screen. With a bar, a line for the
 * same terminal goes through cli-progress' MultiBar.log, which clears the bar, writes the line above it
 * and redraws the bar below: lines are never written into the bar's row. A line for a stream that is
 * not that terminal (stdout redirected to a file) is written as is.
 */
export class TerminalOutput {
    bars;
    bar;
    stdout;
    stderr;
    quiet;
    constructor(options) {
        this.stdout = options.stdout ?? process.stdout;
        this.stderr = options.stderr ?? process.stderr;
        this.quiet = options.quiet === true;
        const stderr = this.stderr;
        this.bars = options.progress && stderr.isTTY
            ? new cliProgress.MultiBar(
            // linewrap off: a bar wider than the terminal is cut, never wrapped onto a second row it cannot clear.
            // forceRedraw: a logged line overwrites the bar's row, and cli-progress skips drawing an unchanged
            // bar, so without it lines logged after the last change (final downloads) leave no bar on screen.
            { format: 'processing [{bar}] {value}/{total} images | {status}', stream: stderr, hideCursor: true, linewrap: false, autopadding: true, forceRedraw: true }, cliProgress.Presets.shades_classic)
            : undefined;
    }
    /** A result for scripts (downloaded path, QR texts): stdout. */
    result(line) {
        if (!this.quiet)
            this.write(this.stdout, line);
    }
    /** A message for people (job accepted, failures, waiting reasons): stderr. */
    note(line) {
        if (!this.quiet)
            this.write(this.stderr, line);
    }
    startProgress(total, status) {
        this.bar = this.bars?.create(total, 0, { status });
    }
    progress(done, total, status) {
        this.bar?.setTotal(total);
        this.bar?.update(done, { status });
    }
    /** Draws the bar one last time, below every line logged, and leaves the cursor on the next row. */
    stopProgress() {
        if (!this.bar)
            return;
        this.bars.update();
        this.bars.stop();
        this.bar = undefined;
    }
    write(stream, line) {
        const sharesTheBarsTerminal = this.bar !== undefined && stream.isTTY === true;
        if (sharesTheBarsTerminal) {
            this.bars.log(`${line}\n`);
            this.bars.update();
        }
        else {
            stream.write(`${line}\n`);
        }
    }
}
//# sourceMappingURL=terminal-output.js.map