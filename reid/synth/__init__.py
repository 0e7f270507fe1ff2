"""The synthetic multi-camera world: seeded scenes, people and full ground truth."""
