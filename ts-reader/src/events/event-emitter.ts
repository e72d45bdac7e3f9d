/** EventEmitter wrapper providing consistent pub/sub across runtimes (the seed's TaskerEventEmitter). */
import { EventEmitter } from 'eventemitter3';

export class TaskerEventEmitter extends EventEmitter {
  private _active = false;
  /** Events published while inactive (dropped, as in the seed, but counted). */
  droppedWhileInactive = 0;
  /** Where drops are reported (the seed's console.warn by default). */
  warn: (message: string) => void = (message) => console.warn(message);

  start(): void {
    this._active = true;
  }

  stop(): void {
    this._active = false;
    this.removeAllListeners();
  }

  isActive(): boolean {
    return this._active;
  }

  publish(event: string, ...args: unknown[]): void {
    if (!this._active) {
      this.droppedWhileInactive += 1;
      this.warn(`EventEmitter not active, dropping event: ${event}`);
      return;
    }
    this.emit(event, ...args);
  }

  subscribe(event: string, handler: (...args: any[]) => void): void {
    this.on(event, handler);
  }

  unsubscribe(event: string, handler: (...args: any[]) => void): void {
    this.off(event, handler);
  }
}
