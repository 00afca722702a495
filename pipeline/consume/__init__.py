"""Consume: the queue's consumer (the Lambda handler) and the local worker that calls it."""
