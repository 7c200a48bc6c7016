/** A counting semaphore: at most `size` tasks run at once, the rest wait in arrival order. */
export class Slots {
    size;
    running = 0;
    waiting = [];
    idleWaiters = [];
    /** Tasks accepted (body still arriving, waiting or running): drain waits for all of them. */
    accepted = 0;
    constructor(size) {
        this.size = size;
    }
    get busy() {
        return this.running;
    }
    get queued() {
        return this.waiting.length;
    }
    async use(task) {
        if (this.running >= this.size)
            await new Promise((resolve) => this.waiting.push(resolve));
        else
            this.running += 1;
        try {
            return await task();
        }
        finally {
            const next = this.waiting.shift();
            if (next)
                next();
            else
                this.running -= 1;
        }
    }
    /** Counts a task from the moment it is accepted; call the returned function when it is answered. */
    accept() {
        this.accepted += 1;
        let done = false;
        return () => {
            if (done)
                return;
            done = true;
            this.accepted -= 1;
            if (this.accepted === 0)
                for (const resolve of this.idleWaiters.splice(0))
                    resolve();
        };
    }
    /** Resolves once every accepted task has been answered. */
    idle() {
        if (this.accepted === 0)
            return Promise.resolve();
        return new Promise((resolve) => this.idleWaiters.push(resolve));
    }
}
//# sourceMappingURL=slots.js.map