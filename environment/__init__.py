"""The task definition, the budget unit and the executors behind one interface."""
