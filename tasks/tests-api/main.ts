// The image's entry: runlet's Lambda adapter calls the unchanged handler (tasks/lib/lambda-handler.cjs).
import { invoke } from '../lib/lambda-handler.cjs';
import { handler } from './handler.js';

invoke(handler);
