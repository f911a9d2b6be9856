"""Where the ROS 2 distributions' rclpy differ, handled in one place.

The same code runs on Jazzy (rclpy 7) and Kilted (rclpy 9); it keeps to the rclpy API both
share, and what behaves differently is evened out here:

``guard_change_state(node)``: a lifecycle ``~/change_state`` request whose transition id
does not leave the current state (e.g. activate while unconfigured). rclpy 9 logs an error
and answers ``success: false``; rclpy 7 lets RCLError escape the service callback, which
ends ``rclpy.spin`` and the process. Guarded, both refuse with one warning and the node
keeps serving. Requests by label are left to rclpy (both refuse an unknown label).
"""

from __future__ import annotations


def guard_change_state(node) -> None:
    """Refuse unavailable ChangeState transition ids before rclpy sees them.

    ``node``: an rclpy.lifecycle.Node; its ``~/change_state`` service callback is wrapped.
    """
    service = node._service_change_state  # rclpy 7 and 9 both keep the service here
    answer = service.callback

    def guarded(request, response):
        transition = request.transition
        if not transition.label:
            machine = node._state_machine
            available = {t[0] for t in machine.available_transitions}
            if transition.id not in available:
                state = machine.current_state[1]
                node.get_logger().warning(
                    f"change_state refused: transition {transition.id} is not available from "
                    f"state {state} (available: {sorted(available)})")
                response.success = False
                return response
        return answer(request, response)

    service.callback = guarded
