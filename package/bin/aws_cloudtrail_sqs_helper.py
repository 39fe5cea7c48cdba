def validate_input(definition):
    return


def stream_events(inputs, event_writer):
    return
