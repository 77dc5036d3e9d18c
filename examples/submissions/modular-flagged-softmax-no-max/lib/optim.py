from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np


""" Super Class """
class Optimizer(object):
    """
    This is a template for implementing the classes of optimizers
    """
    def __init__(self, net, lr=1e-4):
        self.net = net  # the model
        self.lr = lr    # learning rate

    """ Make a step and update all parameters """
    def step(self):
        #### FOR RNN / LSTM ####
        if hasattr(self.net, "preprocess") and self.net.preprocess is not None:
            self.update(self.net.preprocess)
        if hasattr(self.net, "rnn") and self.net.rnn is not None:
            self.update(self.net.rnn)
        if hasattr(self.net, "postprocess") and self.net.postprocess is not None:
            self.update(self.net.postprocess)

        #### MLP ####
        if not hasattr(self.net, "preprocess") and \
           not hasattr(self.net, "rnn") and \
           not hasattr(self.net, "postprocess"):
            for layer in self.net.layers:
                self.update(layer)


""" Classes """
class SGD(Optimizer):
    """ Some comments """
    def __init__(self, net, lr=1e-4, weight_decay=0.0):
        self.net = net
        self.lr = lr
        self.weight_decay = weight_decay

    def update(self, layer):
        for n, dv in layer.grads.items():
            #############################################################################
            # TODO: Implement the SGD with (optional) Weight Decay                      #
            #############################################################################
            if dv is None:
                continue
            param = layer.params[n]
            layer.params[n] = param - self.lr * dv - self.weight_decay * param
            #############################################################################
            #                             END OF YOUR CODE                              #
            #############################################################################


class Adam(Optimizer):
    """ Some comments """
    def __init__(self, net, lr=1e-3, beta1=0.9, beta2=0.999, t=0, eps=1e-8, weight_decay=0.0):
        self.net = net
        self.lr = lr
        self.beta1, self.beta2 = beta1, beta2
        self.eps = eps
        self.mt = {}
        self.vt = {}
        self.t = t
        self.weight_decay = weight_decay

    def step(self):
        self.t += 1
        super(Adam, self).step()

    def update(self, layer):
        #############################################################################
        # TODO: Implement the Adam with [optinal] Weight Decay                      #
        #############################################################################
        for n, dv in layer.grads.items():
            if dv is None:
                continue
            m = self.mt.get(n, np.zeros_like(dv))
            v = self.vt.get(n, np.zeros_like(dv))
            m = self.beta1 * m + (1.0 - self.beta1) * dv
            v = self.beta2 * v + (1.0 - self.beta2) * dv * dv
            self.mt[n] = m
            self.vt[n] = v
            m_hat = m / (1.0 - self.beta1 ** self.t)
            v_hat = v / (1.0 - self.beta2 ** self.t)
            param = layer.params[n]
            layer.params[n] = (param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
                               - self.weight_decay * param)
        #############################################################################
        #                             END OF YOUR CODE                              #
        #############################################################################
