package host

import (
	"github.com/agenthost/agenthost/runtime/console"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// consoleTask records task id of caller c with input in the console's
// task log (none without a console) and returns emit wrapped to record
// each event the task sends.
func (h *Host) consoleTask(id string, c mediator.Caller, input string, emit func(localapi.TaskEvent) error) func(localapi.TaskEvent) error {
	record := h.consoleTasks.Begin(console.Task{ID: id, Txn: c.Txn, ParentTask: c.ParentTask, Agent: c.Agent,
		User: c.Subject, SubjectSource: c.SubjectSource, Input: input})
	if record == nil {
		return emit
	}
	return func(ev localapi.TaskEvent) error {
		record(console.TaskEvent{Type: ev.Type, Text: ev.Text, Tool: ev.Tool, Arguments: ev.Arguments})
		return emit(ev)
	}
}
